"""The run time must work where torch is not installed."""
import subprocess
import sys
import textwrap


def test_round_trip_with_torch_unimportable():
    code = textwrap.dedent(
        """
        import sys
        class BlockTorch:
            def find_spec(self, name, path=None, target=None):
                if name == "torch" or name.startswith("torch."):
                    raise ImportError("torch is blocked in this test")
                return None
        sys.meta_path.insert(0, BlockTorch())
        import numpy as np
        import aecodec, aecodec.cli, aecodec.api, aecodec.image, aecodec.audio, aecodec.models, aecodec.coding, aecodec.format
        img = (np.arange(23 * 31 * 3) % 251).astype(np.uint8).reshape(23, 31, 3)
        out = aecodec.decompress(aecodec.compress(img, quality=50), as_array=True)
        assert out.shape == img.shape
        assert "torch" not in sys.modules
        print("ok")
        """
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stderr
