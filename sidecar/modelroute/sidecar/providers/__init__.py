"""Provider adapters: the only code that does provider I/O (one module per SDK, imported lazily)."""
