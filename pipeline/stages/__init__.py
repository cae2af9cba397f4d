"""The stages, in order: discover -> plan -> parse -> normalize (textfix) -> images -> index -> outcomes."""
