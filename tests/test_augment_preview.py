"""`python -m resnet_flax.augment_preview` writes its grid of policies as a PNG."""

from resnet_flax import augment_preview


def test_preview_writes_a_png(tmp_path, capsys):
  out = tmp_path / 'policies.png'
  augment_preview.main(['--out', str(out), '--draws', '1', '--digits', '1', '--synthetic', '1',
                        '--policies', 'trivialaugment'])
  assert out.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
  assert str(out) in capsys.readouterr().out
