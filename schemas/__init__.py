"""One definition per lake table and per report: read, build test frames, validate."""
