package programme

import "errors"

// Domain errors of the programme.
var (
	// ErrTierNotFound: no tier with that code.
	ErrTierNotFound = errors.New("tier not found")
	// ErrTransfersDisabled: the programme does not allow member-to-member transfers.
	ErrTransfersDisabled = errors.New("transfers are disabled")
	// ErrCompanyNotFound: no such company.
	ErrCompanyNotFound = errors.New("company not found")
	// ErrNotDesignated: the member may not spend the company's points.
	ErrNotDesignated = errors.New("member is not a designated employee of the company")
	// ErrAlreadyEmployee: the member is linked to a company already.
	ErrAlreadyEmployee = errors.New("member already belongs to a company")
	// ErrCompanyLevelNotFound: no company level is defined for the spend.
	ErrCompanyLevelNotFound = errors.New("no company level defined")
	// ErrEmployeeNotFound: the member is not linked to any company.
	ErrEmployeeNotFound = errors.New("employee not found")
	// ErrCorporatePartnerNotFound: the partner is not a corporate partner.
	ErrCorporatePartnerNotFound = errors.New("corporate partner not found")
	// ErrUnknownCompanyLevel: no company level has that code.
	ErrUnknownCompanyLevel = errors.New("company level not found")
)
