"""The seed's terrain-inpainting network: glacier-free training patches, masks, a gated-conv
U-Net, its trainer and figures. Hides the glacier and fills the terrain under it."""
