"""What tests of every level share; no tests of its own (the level markers skip this folder)."""
