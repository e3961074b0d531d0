"""vitrepro."""
