"""finescale.synth"""
