"""ABA routing transit numbers: nine digits whose weighted sum (3, 7, 1) is a multiple of ten."""

_WEIGHTS = (3, 7, 1, 3, 7, 1, 3, 7, 1)


def is_valid_aba_routing(number: str) -> bool:
    if len(number) != 9 or not number.isdigit():
        return False
    total = sum(int(d) * w for d, w in zip(number, _WEIGHTS, strict=True))
    return total % 10 == 0 and number != "000000000"
