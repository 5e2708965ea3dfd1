"""assay.llm"""
