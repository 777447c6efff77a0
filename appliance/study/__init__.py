"""`sosie study`: the artist's questions asked of sets of generated faces, answered with a number,
an uncertainty and a picture (workstation only: the `sosie[study]` extra, never on the Pi).

One concern per module:

- `inputs`: the sets (corpora, folders of images described through the corpus build) and the
  references (photos described as usual, or .npy descriptors), with their descriptor models.
- `doubles`: distances from every reference to every face; each reference's best doubles.
- `compare`: are one set's doubles closer than another's? Paired per-reference differences at
  equal set sizes, a bootstrap interval and a signed-rank test.
- `clusters`: density clustering (HDBSCAN) that may answer "none", its silhouette and stability,
  the medoids; the generator's "type" and how concentrated each set is.
- `among`: are a reference's doubles more alike among themselves? (permutation test)
- `embed`: PCA and UMAP layouts of the sets with the references placed on them.
- `report`: DIR/index.html, DIR/study.json, CSVs, figures and contact sheets.
- `run`: the whole study, stage by stage.
"""
