"""The API's parsers (``DEFAULT_PARSER_CLASSES``): DRF's, plus the one shared check that no string
or key holds a NUL character (PostgreSQL's text and jsonb refuse them): a 400 naming the field
for every endpoint, before any view or serializer sees the data."""

from django.http import QueryDict
from rest_framework import parsers

from .validation import refuse_nul


def _plain(data):
    if isinstance(data, QueryDict):
        return {key: data.getlist(key) for key in data}
    return data


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        data = super().parse(stream, media_type, parser_context)
        refuse_nul(data)
        return data


class FormParser(parsers.FormParser):
    def parse(self, stream, media_type=None, parser_context=None):
        data = super().parse(stream, media_type, parser_context)
        refuse_nul(_plain(data))
        return data


class MultiPartParser(parsers.MultiPartParser):
    def parse(self, stream, media_type=None, parser_context=None):
        parsed = super().parse(stream, media_type, parser_context)
        refuse_nul(_plain(parsed.data))
        return parsed
