"""Volume -> samples: phantoms, slicing, patches, datasets and dataset preparation."""
