"""Data for laser_train: the synthetic world (:mod:`.synthetic`), the dataset format and its
validation (:mod:`.format`), and the streaming pipeline (:mod:`.dataset`: a torch ``Dataset`` and
``DataLoader`` that decode only the sampled frames (:mod:`.video`, :mod:`.sampling`) and cut crops from
boxes or masks (:mod:`.masks`)); defensive file reading in :mod:`.files`."""
