"""Logo prize games: a merchant's logo prepared (alpha, size), cut into fragments, placed in a video, drawn.

Pure media work over files and arrays with small option dataclasses: ``prepare`` reads a logo and gives an
RGBA array with a real alpha channel; ``fragments`` cuts it into seeded Voronoi pieces with their masks and
hit polygons; ``planner`` chooses when and where each piece appears (non-overlapping, inside a safe area,
away from products and faces); ``render`` burns the pieces into a video with one ffmpeg pass and draws the
merchant's preview sheet.
"""
