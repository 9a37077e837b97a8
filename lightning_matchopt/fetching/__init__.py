"""Design-Bench data files: the manifest, their verification, download sources and the fetch."""
