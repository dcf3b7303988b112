"""The job runner: a job's stages from claim to stored scores (stages, claims, canvas, the LoRA,
head and single-task flows, and the store they write through)."""
