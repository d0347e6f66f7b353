"""Paintings: same-artist verification, style / genre / medium classification, embeddings and
similarity search over a collection. Planned (see the open issues); nothing is implemented yet."""
