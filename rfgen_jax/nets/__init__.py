"""Pretrained backbones with converted weights: vgg19, inception (FID), alexnet (LPIPS)."""
