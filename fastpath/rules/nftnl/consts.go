package nftnl

// Netlink numbers of nf_tables, from the kernel's
// include/uapi/linux/netfilter/nf_tables.h (6.18). golang.org/x/sys/unix
// lacks the newer ones, so they are all here, each block one enum of the
// header in its order.

const (
	nfnlSubsysNFTables = 10 // NFNL_SUBSYS_NFTABLES
	nfgenmsgLen        = 4  // struct nfgenmsg: family, version, res_id
	attrTypeMask       = 0x3fff
)

// enum nf_tables_msg_types
const (
	msgNewTable   = 0
	msgGetTable   = 1
	msgNewChain   = 3
	msgGetChain   = 4
	msgNewRule    = 6
	msgGetRule    = 7
	msgNewSet     = 9
	msgGetSet     = 10
	msgNewSetElem = 12
	msgGetSetElem = 13
	msgNewObj     = 18
	msgGetObj     = 19
)

const ( // enum nft_list_attributes
	listElem = 1
)

const ( // enum nft_hook_attributes
	hookNum = iota + 1
	hookPriority
	hookDev
	hookDevs
)

const ( // enum nft_devices_attributes
	deviceName = iota + 1
	devicePrefix
)

const ( // enum nft_table_attributes
	tableName = iota + 1
	tableFlags
	tableUse
	tableHandle
	tablePad
	tableUserdata
	tableOwner
)

const ( // enum nft_chain_attributes
	chainTable = iota + 1
	chainHandle
	chainName
	chainHook
	chainPolicy
	chainUse
	chainType
	chainCounters
	chainPad
	chainFlags
	chainID
	chainUserdata
)

const ( // enum nft_rule_attributes
	ruleTable = iota + 1
	ruleChain
	ruleHandle
	ruleExpressions
	ruleCompat
	rulePosition
	ruleUserdata
	rulePad
	ruleID
	rulePositionID
	ruleChainID
)

const ( // enum nft_set_desc_attributes
	setDescSize = iota + 1
	setDescConcat
)

const ( // enum nft_set_field_attributes
	setFieldLen = 1
)

const ( // enum nft_set_attributes
	setTable = iota + 1
	setName
	setFlags
	setKeyType
	setKeyLen
	setDataType
	setDataLen
	setPolicy
	setDesc
	setID
	setTimeout
	setGCInterval
	setUserdata
	setPad
	setObjType
	setHandle
	setExpr
	setExpressions
	setType
	setCount
)

const ( // enum nft_set_elem_attributes
	elemKey = iota + 1
	elemData
	elemFlags
	elemTimeout
	elemExpiration
	elemUserdata
	elemExpr
	elemPad
	elemObjref
	elemKeyEnd
	elemExpressions
)

const ( // enum nft_set_elem_list_attributes
	elemListTable = iota + 1
	elemListSet
	elemListElements
	elemListSetID
)

const ( // enum nft_data_attributes
	dataValue = iota + 1
	dataVerdict
)

const ( // enum nft_verdict_attributes
	verdictCode = iota + 1
	verdictChain
	verdictChainID
)

// Verdict codes: NF_DROP, NF_ACCEPT, NF_QUEUE and enum nft_verdicts.
const (
	nfDrop      = 0
	nfAccept    = 1
	nfQueue     = 3
	nftContinue = -1
	nftBreak    = -2
	nftJump     = -3
	nftGoto     = -4
	nftReturn   = -5
)

const ( // enum nft_expr_attributes
	exprName = iota + 1
	exprData
)

const ( // enum nft_object_attributes
	objTable = iota + 1
	objName
	objType
	objData
	objUse
	objHandle
	objPad
	objUserdata
)

// Expression attributes, one block per expression.

const ( // enum nft_immediate_attributes
	immediateDReg = iota + 1
	immediateData
)

const ( // enum nft_bitwise_attributes
	bitwiseSReg = iota + 1
	bitwiseDReg
	bitwiseLen
	bitwiseMask
	bitwiseXor
	bitwiseOp
	bitwiseData
	bitwiseSReg2
)

const ( // enum nft_byteorder_attributes
	byteorderSReg = iota + 1
	byteorderDReg
	byteorderOp
	byteorderLen
	byteorderSize
)

const ( // enum nft_cmp_attributes
	cmpSReg = iota + 1
	cmpOp
	cmpData
)

const ( // enum nft_range_attributes
	rangeSReg = iota + 1
	rangeOp
	rangeFromData
	rangeToData
)

const ( // enum nft_lookup_attributes
	lookupSet = iota + 1
	lookupSReg
	lookupDReg
	lookupSetID
	lookupFlags
)

const ( // enum nft_dynset_attributes
	dynsetSetName = iota + 1
	dynsetSetID
	dynsetOp
	dynsetSRegKey
	dynsetSRegData
	dynsetTimeout
	dynsetExpr
	dynsetPad
	dynsetFlags
	dynsetExpressions
)

const ( // enum nft_payload_attributes
	payloadDReg = iota + 1
	payloadBase
	payloadOffset
	payloadLen
	payloadSReg
	payloadCsumType
	payloadCsumOffset
	payloadCsumFlags
)

const ( // enum nft_exthdr_attributes
	exthdrDReg = iota + 1
	exthdrType
	exthdrOffset
	exthdrLen
	exthdrFlags
	exthdrOp
	exthdrSReg
)

const ( // enum nft_hash_attributes
	hashSReg = iota + 1
	hashDReg
	hashLen
	hashModulus
	hashSeed
	hashOffset
	hashType
)

const ( // enum nft_meta_attributes
	metaDReg = iota + 1
	metaKey
	metaSReg
)

const ( // enum nft_rt_attributes
	rtDReg = iota + 1
	rtKey
)

const ( // enum nft_socket_attributes
	socketKey = iota + 1
	socketDReg
	socketLevel
)

const ( // enum nft_ct_attributes
	ctDReg = iota + 1
	ctKey
	ctDirection
	ctSReg
)

const ( // enum nft_limit_attributes
	limitRate = iota + 1
	limitUnit
	limitBurst
	limitType
	limitFlags
	limitPad
)

const ( // enum nft_connlimit_attributes
	connlimitCount = iota + 1
	connlimitFlags
)

const ( // enum nft_counter_attributes
	counterBytes = iota + 1
	counterPackets
	counterPad
)

const ( // enum nft_last_attributes
	lastSet = iota + 1
	lastMsecs
	lastPad
)

const ( // enum nft_log_attributes
	logGroup = iota + 1
	logPrefix
	logSnaplen
	logQThreshold
	logLevel
	logFlags
)

const ( // enum nft_queue_attributes
	queueNum = iota + 1
	queueTotal
	queueFlags
	queueSRegQnum
)

const ( // enum nft_quota_attributes
	quotaBytes = iota + 1
	quotaFlags
	quotaPad
	quotaConsumed
)

const ( // enum nft_reject_attributes
	rejectType = iota + 1
	rejectICMPCode
)

const ( // enum nft_nat_attributes
	natType = iota + 1
	natFamily
	natRegAddrMin
	natRegAddrMax
	natRegProtoMin
	natRegProtoMax
	natFlags
)

const ( // enum nft_tproxy_attributes
	tproxyFamily = iota + 1
	tproxyRegAddr
	tproxyRegPort
)

const ( // enum nft_masq_attributes
	masqFlags = iota + 1
	masqRegProtoMin
	masqRegProtoMax
)

const ( // enum nft_redir_attributes
	redirRegProtoMin = iota + 1
	redirRegProtoMax
	redirFlags
)

const ( // enum nft_dup_attributes
	dupSRegAddr = iota + 1
	dupSRegDev
)

const ( // enum nft_fwd_attributes
	fwdSRegDev = iota + 1
	fwdSRegAddr
	fwdNFProto
)

const ( // enum nft_objref_attributes
	objrefImmType = iota + 1
	objrefImmName
	objrefSetSReg
	objrefSetName
	objrefSetID
)

const ( // enum nft_fib_attributes
	fibDReg = iota + 1
	fibResult
	fibFlags
)

const ( // enum nft_ng_attributes
	ngDReg = iota + 1
	ngModulus
	ngType
	ngOffset
)

const ( // enum nft_osf_attributes
	osfDReg = iota + 1
	osfTTL
	osfFlags
)

const ( // enum nft_synproxy_attributes
	synproxyMSS = iota + 1
	synproxyWscale
	synproxyFlags
)

const ( // enum nft_xfrm_attributes
	xfrmDReg = iota + 1
	xfrmKey
	xfrmDir
	xfrmSPNum
)
