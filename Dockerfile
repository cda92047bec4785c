# The app image for docker-compose: web (gunicorn), worker and beat share it.
FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
# WeasyPrint needs Pango; fonts are shipped for the PDFs.
RUN apt-get update && apt-get install -y --no-install-recommends \
        libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY . .
# The same pinned versions the test suite passed with.
RUN pip install --no-cache-dir -c constraints.txt .
RUN DJANGO_SETTINGS_MODULE=config.settings.production SECRET_KEY=build-only ALLOWED_HOSTS=* \
    python manage.py collectstatic --noinput
RUN useradd --system --uid 1000 edc && mkdir -p /app/media && chown edc /app/media
USER edc
EXPOSE 8000
CMD ["gunicorn", "config.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3"]
