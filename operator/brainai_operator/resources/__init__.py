"""Pure builders: resolved settings in, manifest dicts out. No I/O here."""
