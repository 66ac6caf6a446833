"""Writing rules for new architectures: scaffold (`rules new`) and check (`rules check`)."""
