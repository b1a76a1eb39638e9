"""The collector: the aiohttp server many developers' proxies ship to (auth, limits,
ingestion into the store), which also serves the report's live dashboard at ``/`` (read
tokens). Imports the store, the report and delivery's file stamp; nothing in ``core/`` or
``adapters/`` imports it.
"""

from .batch import MAX_BODY_BYTES, MAX_EVENTS, ParsedBatch, decode_body, parse_batch
from .run import serve
from .server import EVENTS_SUFFIX, RETRY_AFTER_S, Collector
from .tokens import (
    READ_TOKEN_PREFIX,
    READ_TOKENS_FILENAME,
    TOKEN_PREFIX,
    TOKENS_FILENAME,
    TokenBook,
    TokenFileError,
    add_token,
    bearer_token,
    token_names,
)

__all__ = [
    "EVENTS_SUFFIX",
    "MAX_BODY_BYTES",
    "MAX_EVENTS",
    "READ_TOKENS_FILENAME",
    "READ_TOKEN_PREFIX",
    "RETRY_AFTER_S",
    "TOKENS_FILENAME",
    "TOKEN_PREFIX",
    "Collector",
    "ParsedBatch",
    "TokenBook",
    "TokenFileError",
    "add_token",
    "bearer_token",
    "decode_body",
    "parse_batch",
    "serve",
    "token_names",
]
