"""Published Kodak rate–distortion points of learned codecs, drawn as reference lines.

Source: CompressAI (InterDigitalInc/CompressAI, commit 3d3c9bbd92989b1cf19e122281161f7aac8ee769),
files results/image/kodak/compressai-bmshj2018-{factorized,hyperprior}_mse_cuda.json: their
pretrained MSE models, qualities 1..8, mean over the 24 Kodak images, PSNR and MS-SSIM on RGB.
These are quoted, not measured here.
"""

SOURCE = ("InterDigitalInc/CompressAI@3d3c9bbd92989b1cf19e122281161f7aac8ee769 "
          "results/image/kodak/compressai-bmshj2018-{factorized,hyperprior}_mse_cuda.json")

CURVES = {
    "bmshj2018-factorized (CompressAI, published)": {
        "bpp": [0.12262, 0.18853, 0.28781, 0.44038, 0.64814, 0.96698, 1.35117, 1.83327],
        "psnr": [26.9088, 28.2179, 29.6169, 31.2771, 32.9561, 35.3809, 37.3969, 39.6213],
        "ms_ssim": [0.90999, 0.93605, 0.95547, 0.97036, 0.98064, 0.98788, 0.99220, 0.99510],
    },
    "bmshj2018-hyperprior (CompressAI, published)": {
        "bpp": [0.13129, 0.20889, 0.31986, 0.47836, 0.66869, 0.93883, 1.25917, 1.66022],
        "psnr": [27.5815, 29.1967, 30.9722, 32.8382, 34.5263, 36.7433, 38.5838, 40.5569],
        "ms_ssim": [0.91737, 0.94206, 0.96106, 0.97487, 0.98356, 0.98925, 0.99287, 0.99549],
    },
}
