"""core.csv.streaming_csv_response: the one way a view sends a CSV (rows from a selector,
header first), written as it is sent, every cell through the formula guard."""

from decimal import Decimal

from django.http import StreamingHttpResponse

from core.csv import streaming_csv_response


def rows():
    yield ["study_id", "reason", "change"]
    yield ["BEN-001", '=HYPERLINK("http://evil","click")', Decimal("-12.50")]
    yield ["BEN-002", "a, b", -3]


def test_the_rows_stream_as_csv_lines_with_formulas_neutralised():
    response = streaming_csv_response(rows(), filename="trail.csv")
    assert isinstance(response, StreamingHttpResponse)
    assert b"".join(response.streaming_content) == (
        b"study_id,reason,change\r\n"
        b'BEN-001,"\'=HYPERLINK(""http://evil"",""click"")",-12.50\r\n'
        b'BEN-002,"a, b",-3\r\n'
    )


def test_it_is_an_attachment_with_the_callers_name_and_type():
    default = streaming_csv_response(rows(), filename="consent-audit.csv")
    assert default["Content-Type"] == "text/csv"
    assert default["Content-Disposition"] == 'attachment; filename="consent-audit.csv"'
    utf8 = streaming_csv_response(rows(), filename="x.csv", content_type="text/csv; charset=utf-8")
    assert utf8["Content-Type"] == "text/csv; charset=utf-8"


def test_nothing_is_read_before_the_response_is_sent():
    read = []

    def lazy():
        read.append(True)
        yield ["a"]

    response = streaming_csv_response(lazy(), filename="x.csv")
    assert read == []
    assert b"".join(response.streaming_content) == b"a\r\n"
    assert read == [True]
