"""Moved: the index on disk is the `okdbot.index` package now.

These names are re-exported only for code written against the old module
(branches in flight); import from okdbot.index.* instead. To be removed.
"""

from .index.chunks import (WINDOWS, ChunkRecord, stored_keys, stored_line_tokens,  # noqa: F401
                           stored_tokens, stored_vectors)
from .index.generations import (CURRENT, FORMAT, MODELS, GenerationWriter, build_lock,  # noqa: F401
                                cleanup, current_generation, publish_model)
from .index.reader import IndexReader, live_manifest, open_index, stored_heading_tokens  # noqa: F401
