"""Data for laser_train: the synthetic world (:mod:`.synthetic`), the dataset format and its
validation (:mod:`.format`), and loading into padded tensors (:mod:`.loader`)."""
