//! loom models of caskade's concurrency core; see `tests/` (built only with `--cfg caskade_loom`).
