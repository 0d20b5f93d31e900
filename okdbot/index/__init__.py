"""The index on disk: generations, the chunk database, the dense vectors.

Layout of an index folder:

    index/
      CURRENT            name of the live generation (replaced atomically)
      .lock              held by the one build running
      gen-<time>-<pid>/  one complete, immutable generation:
        manifest.json    model, dimension, chunker/lexical versions, sources,
                         per-note hashes, and a checksum of every file below
        chunks.sqlite    chunk metadata + lexical tokens + vectors (for reuse)
        dense.faiss      vectors with explicit ids (chunk row * WINDOWS + window)
        lexical/         bm25s arrays and JSON
        headings.json    heading paths and their lexical tokens
      models/<model>-<fingerprint>-e<format>/  the query encoder exported to ONNX,
                       once per model and export format (okdbot/embed/exports.py);
                       shared by the generations whose manifest names it

Modules:
    generations  writing a generation and publishing it atomically, CURRENT,
                 the build lock, cleanup, exported models
    chunks       the chunk database (chunks.sqlite): schema, writes, reads, reuse
    dense        the vector index behind one small interface (flat, hnsw);
                 the only faiss importer
    reader       one published generation opened for queries
    files        checksums and durable writes
"""
