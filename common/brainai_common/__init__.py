"""What the engine and the operator share: the engine's configuration schema (the operator renders
it, the engine reads it) and the retry cooldown both use."""
