"""finescale.hw"""
