import pytest


@pytest.fixture(autouse=True)
def _results_computed_inline(settings):
    """The results job runs inside the request, as in the demo (CELERY_TASK_ALWAYS_EAGER), so
    a page shows the results of the data the test wrote. A test of the queue itself asks for
    `results_queued`."""
    settings.CELERY_TASK_ALWAYS_EAGER = True


@pytest.fixture
def results_queued(_results_computed_inline, settings):
    """The results job is sent to the suite's broker (Redis under CI), not run inline."""
    settings.CELERY_TASK_ALWAYS_EAGER = False
