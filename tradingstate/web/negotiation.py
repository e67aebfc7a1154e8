"""Content negotiation: DRF's, answered at once in the usual case.

A bot sends no ``Accept`` header, ``*/*`` (httpx, requests) or the first renderer's own
media type; DRF's ``DefaultContentNegotiation`` parses the header and ranks media types on
every request to reach the same answer (about a twentieth of a kill-switch read's Python).
Any other header, a ``?format=`` override or a format suffix goes through DRF's own rules,
406 included."""

from __future__ import annotations

from rest_framework.negotiation import DefaultContentNegotiation


class JSONFirstNegotiation(DefaultContentNegotiation):
    def select_renderer(self, request, renderers, format_suffix=None):
        if renderers and not format_suffix:
            first = renderers[0]
            accept = request.META.get("HTTP_ACCEPT", "*/*")
            if (accept == "*/*" or accept == first.media_type) and (
                self.settings.URL_FORMAT_OVERRIDE not in request.GET
            ):
                return first, first.media_type
        return super().select_renderer(request, renderers, format_suffix)
