"""The paper's published numbers that the studies set beside their own (paper.md).

Appendix D.4, Table 8: ViT-B/16 pre-trained on ImageNet, 5-shot linear accuracy on ImageNet, by position embedding.
Section 4.6: ViT-B/16, ImageNet top-1 after fine-tuning: masked patch prediction 79.9%, "2% better than from
scratch, 4% behind supervised" (the other two follow from that sentence).

Deviations from the paper: none.
"""

from __future__ import annotations

__all__ = ["TABLE8", "TABLE8_NAMES", "SECTION_4_6", "SECTION_4_6_NAMES"]

TABLE8 = {"none": 0.61382, "learned": 0.64206, "learned_2d": 0.64001, "relative": 0.64032}
TABLE8_NAMES = {"none": "No Pos. Emb.", "learned": "1-D Pos. Emb.", "learned_2d": "2-D Pos. Emb.",
                "relative": "Rel. Pos. Emb."}
SECTION_4_6 = {"scratch": 0.799 - 0.02, "mpp": 0.799, "supervised": 0.799 + 0.04}
SECTION_4_6_NAMES = {"scratch": "from scratch", "mpp": "masked patch prediction", "supervised": "supervised"}
