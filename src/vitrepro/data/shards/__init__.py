"""WebDataset shards: writing them, reading their tar headers, the training stream and
the datamodule."""
