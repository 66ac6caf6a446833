"""Published models: config (the format, plan in and out), files (fetching a repo or folder),
load (checked loading, `build(pretrained=True)`, `from_hub`), publish (folder or Hub commit), card."""
