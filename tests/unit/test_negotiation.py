"""The API's content negotiation answers as DRF's default does, for every Accept header."""

import pytest
from django.http import Http404
from rest_framework.exceptions import NotAcceptable
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BrowsableAPIRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from tradingstate.web.negotiation import JSONFirstNegotiation

ACCEPTS = [
    None,
    "*/*",
    "application/json",
    "application/json; indent=4",
    "text/html",
    "text/html, */*;q=0.8",
    "application/*",
    "",
    "application/xml",
]


def _answer(negotiation, accept, renderers, query="", suffix=None):
    factory = APIRequestFactory()
    extra = {} if accept is None else {"HTTP_ACCEPT": accept}
    request = Request(factory.get("/x/" + query, **extra))
    try:
        renderer, media_type = negotiation.select_renderer(request, renderers, suffix)
    except NotAcceptable:
        return "406"
    except Http404:  # a format no renderer has
        return "404"
    return type(renderer), media_type


@pytest.mark.parametrize("accept", ACCEPTS)
@pytest.mark.parametrize("query", ["", "?format=json", "?format=api", "?format=yaml"])
@pytest.mark.parametrize("suffix", [None, "json"])
@pytest.mark.parametrize(
    "renderers",
    [[JSONRenderer()], [JSONRenderer(), BrowsableAPIRenderer()], [BrowsableAPIRenderer()]],
    ids=["json", "json+api", "api"],
)
def test_same_answer_as_drf(accept, query, suffix, renderers):
    got = _answer(JSONFirstNegotiation(), accept, renderers, query, suffix)
    want = _answer(DefaultContentNegotiation(), accept, renderers, query, suffix)
    assert got == want


def test_an_unacceptable_type_is_still_refused():
    assert _answer(JSONFirstNegotiation(), "application/xml", [JSONRenderer()]) == "406"
