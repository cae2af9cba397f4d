"""What the pipeline keeps in OpenSearch besides the articles: the index management, the ledger,
the image-verdict cache, the dead letters."""
