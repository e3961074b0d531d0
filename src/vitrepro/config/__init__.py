"""How a run is configured and checked before any compute: the typed schema, the rules
between keys, the command line and the entry scripts' errors."""
