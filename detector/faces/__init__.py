"""Faces: MTCNN detection on downscaled copies, margin crops, tracks across frames, the torchvision shim."""
