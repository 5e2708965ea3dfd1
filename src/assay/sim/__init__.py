"""assay.sim"""
