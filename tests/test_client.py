"""The REST client's requests, against a fake upstream that reads its query as a servlet would."""

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from metrics.acr.client import MAX_QUERY_CHARS, fetch_values, split_ids, values_query

KNOWN = {f"M{n:07d}" for n in range(400)}
HIDDEN = {"HIDDEN01"}


class Servlet:
    """A values endpoint written to the vendor text (4.2): ONE `id` parameter, read with
    getParameter (the first of a repeated `id`, percent-decoded) and split on commas; 404 when
    any id does not exist, else 403 when any is not assigned."""

    def __init__(self) -> None:
        self.queries: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.queries.append(request.url.query.decode())
        raw = request.url.params.get("id")
        ids = raw.split(",") if raw else []
        if not ids:
            return httpx.Response(400, json={"error": "missing id"})
        if any(i not in KNOWN | HIDDEN for i in ids):
            return httpx.Response(404, json={"error": "no such metric"})
        if any(i in HIDDEN for i in ids):
            return httpx.Response(403, json={"error": "not assigned"})
        results = [
            {
                "key": {"metricId": i, "categoryValue": ""},
                "value": {"type": "COUNT", "count": 1, "lastUpdateTime": 1},
            }
            for i in ids
        ]
        return httpx.Response(200, json={"results": results, "initializing": []})


@pytest.fixture
def servlet() -> Servlet:
    return Servlet()


@pytest.fixture
async def http(servlet):
    async with httpx.AsyncClient(
        base_url="http://acr.test/rest/api/v1", transport=httpx.MockTransport(servlet)
    ) as client:
        yield client


async def test_the_values_request_sends_one_id_parameter_with_a_comma_list(http, servlet):
    ids = ["M0000001", "M0000002", "M0000003"]
    batch = await fetch_values(http, ids, KNOWN)

    assert servlet.queries == ["id=M0000001,M0000002,M0000003"]
    assert [r.metric_id for r in batch.response.results] == ids
    assert batch.rejected == {}


async def test_many_ids_go_in_as_few_requests_as_fit_under_the_safe_length(http, servlet):
    ids = sorted(KNOWN)
    batch = await fetch_values(http, ids, KNOWN)

    assert sorted(r.metric_id for r in batch.response.results) == ids  # each once
    assert all(len(query) <= MAX_QUERY_CHARS for query in servlet.queries)
    assert all(query.count("id=") == 1 for query in servlet.queries)
    assert len(servlet.queries) == 3  # 400 ids of 8 characters: 3,600 characters of query


async def test_refused_ids_are_isolated_and_the_others_still_get_their_values(http, servlet):
    ids = ["M0000001", "NOPE0001", "M0000002", "HIDDEN01", "M0000003"]
    batch = await fetch_values(http, ids, KNOWN)

    assert sorted(r.metric_id for r in batch.response.results) == [
        "M0000001",
        "M0000002",
        "M0000003",
    ]
    assert set(batch.rejected) == {"NOPE0001", "HIDDEN01"}
    assert "(404)" in batch.rejected["NOPE0001"]
    assert "(403)" in batch.rejected["HIDDEN01"]


def test_ids_are_percent_encoded_and_the_commas_between_them_are_not():
    assert values_query(["A B", "Ü/1", "C"]) == "id=A%20B,%C3%9C%2F1,C"


# Metric ids are opaque strings; one with a comma cannot be sent in the documented form at all
# (nor can a lone surrogate be UTF-8 encoded).
metric_ids = st.text(
    st.characters(exclude_characters=",", exclude_categories=["Cs"]), min_size=1, max_size=40
)


@given(st.lists(metric_ids, max_size=200), st.integers(20, 400))
def test_batches_keep_every_id_in_order_and_each_query_under_the_limit(ids, max_chars):
    batches = split_ids(ids, max_chars)

    assert [i for batch in batches for i in batch] == ids
    for batch in batches:
        assert batch
        assert len(values_query(batch)) <= max_chars or len(batch) == 1
    for first, second in zip(batches, batches[1:], strict=False):
        # A batch is cut only when the next id would not have fitted.
        assert len(values_query([*first, second[0]])) > max_chars
