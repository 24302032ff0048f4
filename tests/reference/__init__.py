"""Reference implementations from other projects, run from their installed code for comparison."""
