//! PLACEHOLDER; replaced by the SDK interop test author.
