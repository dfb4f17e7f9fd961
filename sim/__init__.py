"""finescale.sim"""
