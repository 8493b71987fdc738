"""The policy team's side: questions the policy did not answer, grouped and routed, answered
and delivered; the weekly digest; exports of the question log."""
