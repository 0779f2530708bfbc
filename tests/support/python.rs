//! PLACEHOLDER so the harness compiles; replaced entirely by the Python harness author.
