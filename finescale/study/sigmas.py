"""The N(0, sigma^2) operating points of the papers' regions (E4M3 scales, blocks of 4 to 32).

Region A: most blocks get a zero E4M3 scale; region B: small blocks lose to large ones
(the inversion); region C: every block size is alike.  One sigma per region, named once, is
what the stimulus, the validation and the report's fallback use.
"""

#: sigma of each region's normal blocks (the study detects the exact ranges: ``finescale study``)
REGION_SIGMA = {"A": 0.001, "B": 0.006, "C": 0.03}
#: the region-B sigma: where the inversion is strongest
REGION_B = REGION_SIGMA["B"]
