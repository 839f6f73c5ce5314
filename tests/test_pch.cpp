// Owns the tests' precompiled header.
