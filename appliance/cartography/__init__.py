"""Cartography: rank a folder of lookalikes against a reference, and map a corpus.

`sosie map` writes a static, offline site (2-D level-of-detail map, 3-D/WebXR view) with
`site.build_site`; `sosie rank` ranks a folder with `rank.rank_folder`.
"""
