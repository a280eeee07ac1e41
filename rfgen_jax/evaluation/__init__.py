"""Evaluation: metrics (FID, LPIPS, Mask-LPIPS, SSIM, PSNR, L1), limb masks, the eval loop."""
