"""Guards against hostile input: the hardened YAML loader and the SSRF rules of outbound HTTP."""
