"""Optional bridges to other tools; the core never imports this package (each module needs its tool installed)."""
